import os

# jsii's end-of-life banner for the Node 20 on this machine (only Node 20, only if not set already).
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
