"""Component documents from S3, served by moto in server mode (real HTTP, real boto3 serialisation)."""

from __future__ import annotations

from typing import Any

import pytest

from kiln.errors import NotFound
from kiln.services.components.resource import create_component, get_component


def test_component_from_s3(s3: Any, simple_doc: str) -> None:
    s3.create_bucket(Bucket="components")
    s3.put_object(Bucket="components", Key="docs/simple.yaml", Body=simple_doc.encode())
    body = {
        "name": "from-s3",
        "semanticVersion": "1.0.0",
        "platform": "Linux",
        "uri": "s3://components/docs/simple.yaml",
    }
    arn = create_component(body)["componentBuildVersionArn"]
    assert get_component(arn)["component"]["data"] == simple_doc
    # Same object again: unchanged; the stored document no longer depends on the bucket.
    assert create_component(body)["componentBuildVersionArn"] == arn
    s3.delete_object(Bucket="components", Key="docs/simple.yaml")
    assert get_component(arn)["component"]["data"] == simple_doc
    with pytest.raises(NotFound) as caught:
        create_component({**body, "semanticVersion": "1.0.1"})
    assert "s3://components/docs/simple.yaml" in caught.value.message
