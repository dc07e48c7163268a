"""The house goals of the notebooks, measured (python bench/house.py): module sizes, export-cell sizes, definitions per export
cell, docments on public functions with two or more parameters, and which public names of a module no lesson uses."""
import ast, json, re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LESSONS_FOR = ("serve.", "site", "project", "cli", "command")  # modules whose every public name a lesson must use


def notebooks():
    "Each numbered notebook: (path, module it exports, its code cells as (is_export, source))"
    for nb in sorted((ROOT/"nbs").glob("[0-9]*.ipynb")):
        cells = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        srcs = ["".join(c["source"]) for c in cells]
        mod = next((m[1] for s in srcs if (m := re.match(r"#\|\s*default_exp\s+(\S+)", s))), None)
        yield nb, mod, [(bool(re.match(r"\s*#\|\s*export", s)), s) for s in srcs]


def has_docments(fn: ast.FunctionDef, src: str) -> bool:
    "Every parameter but self/cls carries a comment on its line, nbdev's docments"
    lines = src.splitlines()
    args = [a for a in fn.args.args + fn.args.kwonlyargs if a.arg not in ("self", "cls")]
    return all("#" in lines[a.lineno - 1][a.col_offset:] for a in args)


def main():
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in (ROOT/"mlresearch").rglob("*.py") if p.name != "_modidx.py"}
    cells = multi = over40 = 0
    wanting, documented, unused = [], 0, {}
    for nb, mod, code in notebooks():
        lessons = "\n".join(s for exp, s in code if not exp)
        for exp, s in code:
            if not exp: continue
            cells += 1
            over40 += len([l for l in s.splitlines() if l.strip() and not l.lstrip().startswith("#|")]) > 40
            try: tree = ast.parse(s)
            except SyntaxError: continue
            defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
            multi += len(defs) > 1
            for n in defs:
                public = not n.name.startswith("_")
                verb = any(isinstance(d, ast.Call) and getattr(d.func, "attr", "") in ("command", "callback") for d in getattr(n, "decorator_list", []))
                if public and isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and not verb:  # typer's help documents a verb's options
                    nparams = len([a for a in n.args.args + n.args.kwonlyargs if a.arg not in ("self", "cls")])
                    if nparams >= 2:
                        if has_docments(n, s): documented += 1
                        else: wanting.append(f"{mod}.{n.name}")
                if public and not verb and mod and mod.startswith(LESSONS_FOR) and not re.search(rf"\b{n.name}\b", lessons):  # a verb's lesson invokes it by name
                    unused.setdefault(mod, []).append(n.name)
    total = documented + len(wanting)
    figures = dict(largest_modules=dict(sorted(sizes.items(), key=lambda kv: -kv[1])[:5]), modules_over_300=[k for k, v in sizes.items() if v > 300],
                   export_cells=cells, cells_over_40_lines=over40, multi_definition_share=round(multi / cells, 3),
                   docments=f"{documented} of {total} public functions with 2+ parameters ({documented / total:.0%})",
                   functions_without_docments=wanting, public_names_no_lesson_uses=unused)
    print(json.dumps(figures, indent=1))


if __name__ == "__main__": main()
