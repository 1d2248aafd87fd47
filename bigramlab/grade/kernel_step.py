"""The one thing the grader asks of a student's kernel: call a function on given inputs.

``call(spec)`` reads the inputs the grader wrote (``wire``: JSON and safetensors;
models and objects rebuilt from their config or recipe), calls the student's
function by its name in the notebook's namespace, and writes back, as plain
data, what it returned (or the name and message of what it raised) and the
inputs as they are after the call (so the grader sees an input changed in place).

Nothing here decides a score: the grader, in its own process, chose the inputs,
and compares what comes back with its own reference. A notebook that replaces
this module, ``exec``, ``open``, ``json`` or torch only changes what comes back,
which is then judged like any other answer. For instructors: no chapter teaches it.
"""

from __future__ import annotations

from . import wire


def _namespace() -> dict:
    from IPython import get_ipython  # only inside a kernel
    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


def call(spec: dict) -> None:
    """``spec``: fn (a name), inp and out (paths), nonce (echoed back)."""
    result = {"nonce": spec["nonce"], "status": "returned", "value": None, "error": "",
              "after": None}
    args = wire.read(spec["inp"], objects=True)
    fn = _namespace().get(spec["fn"])
    if fn is None:
        result["status"] = "missing"
    elif not callable(fn):
        result.update(status="raised", error=["TypeError",
                                              f"{spec['fn']} is a {type(fn).__name__}, "
                                              "not a function"])
    else:
        try:
            result["value"] = fn(*args)
        except NotImplementedError:
            result["status"] = "not implemented"
        except Exception as e:  # the student's code failed: its name and message go back
            result.update(status="raised", error=[type(e).__name__, str(e)[:500]])
    result["after"] = [a if isinstance(a, (dict, list, set)) or hasattr(a, "shape") else None
                       for a in args]
    try:
        wire.write(spec["out"], result)
    except Exception as e:  # an answer the wire cannot carry: say what it was
        result.update(status="raised", value=None, after=None,
                      error=["TypeError", f"your function returned something that cannot be "
                                          f"graded ({type(e).__name__}: {str(e)[:200]})"])
        wire.write(spec["out"], result)
