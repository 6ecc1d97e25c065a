"""gritdesk: offline Q&A over your own files with one GGUF model (GritLM)."""
