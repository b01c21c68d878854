"""Everything that talks to Git: repository access, history, published versions, the merge driver."""
