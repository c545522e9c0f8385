"""The compiled XML renderers: an AMI shape's XML is made once, and a shape changed since is rendered
anew (never the remembered text of what it was)."""

from __future__ import annotations

from kiln.api.model import service_model
from kiln.api.xml_render import to_xml
from kiln.store.images import Ec2Shape


def test_remembered_xml_only_while_the_shape_is_unchanged() -> None:
    shape = service_model("ec2").shape_for("Image")
    source: dict[str, object] = {"ImageId": "ami-1", "Name": "web", "Public": False}
    memo: dict[object, object] = {}
    first = to_xml(shape, Ec2Shape.of(source, memo))
    assert first == "<name>web</name><imageId>ami-1</imageId><isPublic>false</isPublic>"
    assert list(memo.values()) == [first]
    assert to_xml(shape, Ec2Shape.of(source, memo)) == first
    changed = Ec2Shape.of(source, memo)
    changed["Name"] = "db & co"
    assert to_xml(shape, changed) == "<name>db &amp; co</name><imageId>ami-1</imageId><isPublic>false</isPublic>"
    assert list(memo.values()) == [first]
