"""The answering defaults every interface shares, in a module that imports nothing, so
`gritdesk --help` can print them without loading the engine. `AskOptions` (rag/answer.py)
takes its defaults from here and `AskService` (rag/ask_service.py) applies them."""

DEFAULT_K = 4  # chunks an answer is given
MAX_K = 64  # ... at most
DEFAULT_MAX_TOKENS = 256  # tokens an answer may have
MAX_HISTORY_TURNS = 4  # earlier turns of a conversation the model sees, at most
RETRIEVAL_QUESTIONS = 2  # earlier questions added to the retrieval query
