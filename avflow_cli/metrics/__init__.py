"""The paper's metrics (AV-Flow §4, Tables 1-3), each a plain function with its definition."""
