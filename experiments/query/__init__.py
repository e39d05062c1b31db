"""The run query language: ``parser`` (pure, no Django) turns a filter string into an AST;
``compiler`` turns the AST into one ORM queryset over the indexed summary tables."""
