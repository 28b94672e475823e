"""The LLM layer: the Ollama gateway, prompts, streaming, fact checks and summaries."""
