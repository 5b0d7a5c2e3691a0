import subprocess
import sys
import textwrap

from studio.core.registry import GROUP, Registry
from studio.plugin_api import Kind

GOOD = textwrap.dedent("""
    from studio.plugin_api import API_VERSION, Kind

    class Good:
        id = "fake-good"
        label = "Fake good"
        kind = Kind.TEXT
        api_version = API_VERSION
        def parameters(self): return []
        def modes(self): return []
        def models(self): return []
        def load(self, source, options, progress): raise NotImplementedError

    class OldApi(Good):
        id = "fake-old"
        api_version = 0
""")


def _fake_distribution(root, entry_points: dict[str, str]):
    """A distribution installed without pip: a module plus a *.dist-info folder on sys.path."""
    (root / "fakeplug.py").write_text(GOOD)
    (root / "brokenplug.py").write_text("raise ImportError('needs a library that is not installed')\n")
    info = root / "fakeplug-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplug\nVersion: 1.0\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{lines}\n")


def test_discovery_turns_failures_into_rows(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, {"fake-good": "fakeplug:Good", "fake-old": "fakeplug:OldApi",
                                  "fake-broken": "brokenplug:Plugin", "fake-missing": "fakeplug:Nope"})
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry.discover()
    rows = {e.name: e for e in registry.entries}
    assert rows["fake-good"].ok and rows["fake-good"].kind is Kind.TEXT
    assert "needs a library that is not installed" in rows["fake-broken"].status
    assert "plugin API 0" in rows["fake-old"].error
    assert "Nope" in rows["fake-missing"].error
    assert "fake-good" in [p.id for p in registry.plugins(Kind.TEXT)]
    # First-party plugins register through the same entry points.
    assert "diffusers" in rows and rows["diffusers"].ok, rows.get("diffusers")


def test_the_default_plugin_of_a_kind_is_the_studios_own(tmp_path, monkeypatch):
    """Another distribution's text plugin, found first on sys.path, does not take over the panel."""
    _fake_distribution(tmp_path, {"fake-good": "fakeplug:Good"})
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry.discover()
    rows = {e.name: e for e in registry.entries}
    assert rows["text"].builtin and rows["diffusers"].builtin and not rows["fake-good"].builtin
    assert [p.id for p in registry.plugins(Kind.TEXT)][0] == "fake-good"  # listed first ...
    assert registry.default(Kind.TEXT).id == "text"  # ... but not the default
    only_added = Registry()
    only_added.add("fake", lambda: __import__("fakeplug").Good())
    assert only_added.default(Kind.TEXT).id == "fake-good"  # no built-in one: the first that loaded
    assert only_added.default(Kind.MUSIC) is None


def test_entry_points_import_without_torch():
    """Loading every plugin entry point (and the core) must not import the heavy libraries."""
    code = textwrap.dedent("""
        import sys
        from studio.core.registry import Registry
        from studio.core.context import StudioContext
        registry = Registry.discover()
        assert registry.entries, "no plugins found"
        for entry in registry.entries:
            if entry.plugin:
                entry.plugin.parameters(); entry.plugin.models()
        heavy = [m for m in ("torch", "diffusers", "transformers") if m in sys.modules]
        print("HEAVY", heavy)
        sys.exit(1 if heavy else 0)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
