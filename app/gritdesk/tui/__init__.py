"""`gritdesk chat`, the terminal chat over the index (Textual).

llama.cpp's CPU backend runs its threads through OpenMP, whose threads spin while they
wait. Next to a UI thread on a machine with few cores that spinning starves both: answers
streamed about 15 times slower in the chat than in `gritdesk ask` on 2 cores. Passive
waiting must be chosen before libgomp loads (with `llama_cpp`), hence here, before the
app's modules import the engine; a value the user set is kept.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
