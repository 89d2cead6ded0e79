"""Results as tables, Plotly charts and a self-contained HTML report."""
