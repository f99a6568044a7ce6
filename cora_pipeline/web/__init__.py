"""The Integrations page served by ``cora web``: Salesforce cards behind operator sign-in.

The page is another way into :mod:`cora_pipeline.connect`; it starts and finishes the same OAuth
web-server flow as ``cora connect`` and reads the same vault.
"""

from cora_pipeline.web.app import create_app

__all__ = ["create_app"]
