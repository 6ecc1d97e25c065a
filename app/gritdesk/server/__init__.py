"""`gritdesk serve` and `gritdesk mcp`: the one loaded model behind an OpenAI-compatible HTTP
API (embeddings, chat, rerank, RAG over the index) and an MCP server (search, ask).

Layout: `settings` (bind, key, limits), `schemas` (request shapes), `errors` (OpenAI error
objects), `auth` (Bearer key), `engine_worker` and `engine_jobs` (the single thread that
owns llama.cpp; answers go through `rag.ask_service`), `routes` and `app` (HTTP),
`serve` (uvicorn), `mcp_tools` (MCP over stdio).
"""
