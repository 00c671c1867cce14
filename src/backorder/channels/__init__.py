"""Sales channels (issue 3): the inbox processor, stock-sync coalescing, reconciliation, the
POS/B2B order API's parsing, and ingress counters. Built by the composition root; run from the
worker loop."""
