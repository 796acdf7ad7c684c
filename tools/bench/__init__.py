"""The benchmark instrument: vecledger against its peers (raw pylance, faiss, numpy) in one run."""
