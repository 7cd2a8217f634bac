"""llama.cpp's own OpenAI-compatible HTTP server (through xllamacpp, the local backend's
runtime) serving the SmolLM2 model on a loopback port: a real peer for the openai backend.

    python tests/llm/llama_server.py PORT

prints ``ready http://127.0.0.1:PORT/v1`` once it answers, and serves until stdin closes.
"""

from __future__ import annotations

import sys


def main(port: int) -> None:
    import xllamacpp

    from regions_cli.llm.local import default_model_path

    params = xllamacpp.CommonParams()
    params.model.path = str(default_model_path())
    params.n_ctx = 2048
    params.n_parallel = 2
    params.port = port
    params.verbosity = -1
    server = xllamacpp.Server(params)
    print(f"ready {server.listening_address}/v1", flush=True)
    sys.stdin.read()  # until the test closes our stdin


if __name__ == "__main__":
    main(int(sys.argv[1]))
