"""Replica backends behind one protocol (``agents.backends.base``): ``vllm_process`` runs real vLLM servers;
``tiny_model`` makes the small local model that lets real vLLM run on a CPU-only machine."""
