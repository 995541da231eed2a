"""The order in which the edge asks its controllers."""

from __future__ import annotations

from spacehub.proxy.controllers import Controllers


def test_a_controller_that_refused_is_asked_last_until_it_answers_again() -> None:
    controllers = Controllers(["http://a", "http://b", "http://c"])
    assert controllers.in_order() == ["http://a", "http://b", "http://c"]
    controllers.refused("http://a")
    assert controllers.in_order() == ["http://b", "http://c", "http://a"]
    assert controllers.first() == "http://b"
    controllers.refused("http://b")
    assert controllers.in_order() == ["http://c", "http://a", "http://b"]
    controllers.answered("http://a")
    assert controllers.in_order() == ["http://a", "http://c", "http://b"]
