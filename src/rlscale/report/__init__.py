"""Reports of fits and studies: tables (plain.py), the paper's figures as inline SVG
(figures.py) and the pages that hold them (build.py: self-contained HTML, Markdown)."""
