"""Reports of fits and studies. `plain` renders tables only (Markdown and self-contained HTML,
no figures); the figures of the paper arrive with the report issue."""
