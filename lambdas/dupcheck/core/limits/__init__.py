"""The numbers everything is made and judged with, below every room that reads them.

policy.py: every limit, tier and tunable (the views' and kept picture's sizes among them);
judging.py: how a pipeline declares its candidates judged (by distance, or verified under a
policy), the plain values a pipeline names and the matching engine reads.
"""
