"""Compiled bytecode as MicroPython's own tools see it: mpy-cross from the pinned tree
compiles a source for an architecture, and the tree's tools/mpy-tool.py reads the .mpy
back (the reader the build uses to freeze it), so a test can ask what kind of code each
function became."""

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

from epx import build, source


def mpy_tool():
    tree = source.micropython_dir()
    sys.path.insert(0, str(tree / "py"))  # mpy-tool imports makeqstrdata from there
    spec = importlib.util.spec_from_file_location("mpy_tool", tree / "tools" / "mpy-tool.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def compile_mpy(path, out, march, target=None):
    """`path` compiled by the pinned mpy-cross for `march` (x64, xtensawin) into `out`."""
    exe = build.mpy_cross(source.micropython_dir())
    subprocess.run([str(exe), f"-march={march}", "-s", target or Path(path).name, "-o", str(out), str(path)],
                   check=True, capture_output=True, text=True)
    return out


SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda,
          ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def scopes(node):
    """The scopes nested directly in `node`, in source order: the order of a raw code's
    children. Names as Python qualifies them; lambdas and comprehensions as <kind>."""
    found = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, SCOPES):
            found.append(child)
        else:
            found.extend(scopes(child))
    return found


def code_kinds(mpy, source_path, tool=None):
    """{qualified function name: 'MP_CODE_...'} of every function of `source_path`, as its
    compiled `mpy` holds it. Native code carries no name in a .mpy: raw codes are matched
    to the source's scopes by order, and every bytecode one must carry the matched name."""
    tool = tool or mpy_tool()
    # What mpy-tool's main() sets up before it reads: one architecture and qstr list per run.
    tool.config.native_arch = tool.MP_NATIVE_ARCH_NONE
    tool.global_qstrs = tool.GlobalQStrList()
    kinds = {}

    def walk(rc, node, prefix):
        nested = scopes(node)
        assert len(nested) == len(rc.children), f"{mpy}: {prefix or 'module'} scopes differ"
        for child, sub in zip(rc.children, nested):
            name = prefix + getattr(sub, "name", "<%s>" % type(sub).__name__.lower())
            if child.code_kind == tool.MP_CODE_BYTECODE:
                assert child.simple_name.str == name.rsplit(".", 1)[-1], f"{mpy}: order lost at {name}"
            kinds[name] = tool.RawCode.code_kind_str[child.code_kind]
            walk(child, sub, name + ".")

    walk(tool.read_mpy(str(mpy)).raw_code, ast.parse(Path(source_path).read_text()), "")
    return kinds


def decorated(path, decorator="micropython.viper"):
    """Qualified names of the functions in a Python source that carry `decorator`."""
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.ClassDef)):
                name = prefix + child.name
                if any(ast.unparse(d) == decorator for d in getattr(child, "decorator_list", ())):
                    found.append(name)
                visit(child, name + ".")

    visit(ast.parse(Path(path).read_text()), "")
    return found
