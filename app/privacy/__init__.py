"""Customers' data rights: export, erasure, retention, and the classification of every column
that tells what each of them does with it."""
