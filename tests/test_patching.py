"""The patch tables of the local cloud: what they install is what they check."""

import types

from labkit.localcloud.patching import Patch, PatchTable, gone_lines


def _owner() -> type:
    class Backend:
        def create(self) -> str:
            return "moto"

        @property
        def count(self) -> int:
            return 0

        send = None  # a release that keeps the name but no longer a method

    return Backend


def test_install_puts_each_replacement_in_place_properties_as_properties():
    # GIVEN a table replacing a method and a property, and adding an attribute
    owner = _owner()
    table = PatchTable(
        Patch(owner, "create", lambda self: "labkit"),
        Patch(owner, "count", property(lambda self: 7)),
        Patch(owner, "extra", lambda self: "added", added=True),
    )
    # WHEN installed
    table.install()
    # THEN an instance reads labkit's versions
    instance = owner()
    assert (instance.create(), instance.count, instance.extra()) == ("labkit", 7, "added")


def test_missing_names_what_the_owner_lacked_when_the_table_was_built():
    # GIVEN a table over an owner whose `send` is not callable, `gone` absent and `create` no property
    owner = _owner()
    table = PatchTable(
        Patch(owner, "create", property(lambda self: 1)),
        Patch(owner, "count", property(lambda self: 7)),
        Patch(owner, "send", lambda self: None),
        Patch(owner, "gone", lambda self: None),
        Patch(owner, "extra", lambda self: None, added=True),
    )
    # WHEN it is installed over them, and then checked
    table.install()
    # THEN each is judged by what moto had, not by labkit's replacements now in place
    assert table.missing() == [
        "moto's Backend.create is no longer a property",
        "moto Backend.send is gone",
        "moto Backend.gone is gone",
    ]


def test_gone_lines_word_classes_and_modules_as_asked():
    module = types.ModuleType("moto.fake.models")
    owner = _owner()
    assert gone_lines([(module, "helper"), (owner, "create"), (owner, "send")]) == [
        "moto.fake.models.helper is gone",
        "moto Backend.send is gone",
    ]
    assert gone_lines([(module, "helper"), (owner, "send")], gone="{module} {name} is gone") == [
        "moto.fake.models helper is gone",
        f"{owner.__module__} send is gone",
    ]
