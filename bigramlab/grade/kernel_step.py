"""The grading step that runs inside a student's kernel, after the student's cells.

The grader never imports this module: it reads its source and sends it to the
kernel, together with a snapshot of bigramlab's sources taken before any
student code ran, and runs ``grade(spec, user_ns)`` in a fresh namespace, one
request per graded check. Nothing the notebook printed, returned or left in its
namespace is trusted except the objects the check takes:

- bigramlab is imported afresh from the snapshot, by a finder put first on
  ``sys.meta_path``, after every ``bigramlab`` module is dropped from
  ``sys.modules``: a check or ``checks._core`` replaced in the kernel, a fake
  ``bigramlab`` folder beside the notebook, and a package file rewritten on disk
  are all ignored;
- the names used here are bound by imports inside this namespace, so a
  notebook's ``print``, ``json`` or ``open`` in the user namespace are not seen;
  IPython's event hooks and any trace function are removed first, and the
  check's printing goes to a private buffer;
- the result goes to the file named in the request (with its nonce) as a Python
  literal written with ``repr`` of built-in types, which the grader reads with
  ``ast.literal_eval``; a missing, malformed or wrong-nonce file scores 0.

What it cannot stop is code that targets it from inside the check's call (a
student function that walks the call stack, or rewrites torch itself): the
grader's documentation says to run untrusted notebooks in a container.
Only ``grade`` is called from outside. For instructors: no chapter teaches it.
"""

import importlib
import importlib.abc
import importlib.util
import io
import sys
import types

_MARK = "_bigramlab_grader_finder"


class SnapshotFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds and loads ``bigramlab`` and its modules from sources held in memory."""

    def __init__(self, sources):
        self.sources = sources   # module name -> (file name, source, is a package)
        setattr(self, _MARK, True)

    def find_spec(self, name, path=None, target=None):
        if name not in self.sources:
            return None
        filename, _, is_package = self.sources[name]
        return importlib.util.spec_from_loader(name, self, origin=filename,
                                               is_package=is_package)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        filename, source, _ = self.sources[module.__name__]
        module.__file__ = filename
        code = compile(source, filename, "exec", dont_inherit=True)
        exec(code, module.__dict__)


def fresh_bigramlab(sources):
    """Import ``bigramlab.checks`` from ``sources``, replacing whatever is loaded."""
    for name in [n for n in sys.modules if n == "bigramlab" or n.startswith("bigramlab.")]:
        del sys.modules[name]
    sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, _MARK, False)]
    sys.meta_path.insert(0, SnapshotFinder(sources))
    importlib.invalidate_caches()
    return importlib.import_module("bigramlab.checks")


def quiet_the_kernel():
    """Drop IPython's event callbacks and trace functions: no notebook hook runs now."""
    sys.settrace(None)
    sys.setprofile(None)
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        for event in list(shell.events.callbacks):
            shell.events.callbacks[event] = []


def fixture(name, bigramlab):
    """An object the grader makes itself (``@name`` in the metadata)."""
    if name == "@tokenizer":
        return bigramlab.load_tokenizer(bigramlab.get_profile("tiny"))
    raise KeyError(name)


def extra_module(source, filename):
    """The instructor's ``--extra`` file, executed against the fresh bigramlab."""
    module = types.ModuleType("bigramlab_grader_extra")
    module.__file__ = filename
    exec(compile(source, filename, "exec", dont_inherit=True), module.__dict__)
    return module


def write(path, result):
    text = repr(result)
    with io.open(path, "w", encoding="utf8") as f:
        f.write(text)


def grade(spec, user_ns):
    """Run one graded check on the student's objects and write what it found."""
    result = {"nonce": spec["nonce"], "id": spec["id"], "status": "error", "name": spec["id"],
              "line": ""}
    try:
        quiet_the_kernel()
        checks = fresh_bigramlab(spec["sources"])
        core = sys.modules["bigramlab.checks._core"]
        if spec.get("extra_source") is not None:
            where = extra_module(spec["extra_source"], spec["extra_filename"])
        else:
            where = checks
        check = getattr(where, spec["check"])
        args = []
        for name in spec["args"]:
            if name.startswith("@"):
                args.append(fixture(name, sys.modules["bigramlab"]))
            elif name in user_ns:
                args.append(user_ns[name])
            else:
                result.update(status="missing", line=f"✗ `{name}` is not defined in the notebook")
                return write(spec["result_path"], result)
        out, sys.stdout = sys.stdout, io.StringIO()
        try:
            found = check(*args)
        finally:
            sys.stdout = out
        if type(found) is not core.CheckResult:
            result["line"] = f"✗ the check returned a {type(found).__name__}"
        else:
            result.update(status=str(found.status), name=str(found.name),
                          line=str(found.line))
    except BaseException as e:  # the student's code stopped the check: say how, score 0
        result["line"] = (f"✗ grading stopped: {type(e).__name__}: "
                          f"{str(e)[:300]}")
    write(spec["result_path"], result)
