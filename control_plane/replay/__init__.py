"""Replay a request trace through a gateway: real traffic shape against the local stack or a fleet."""
