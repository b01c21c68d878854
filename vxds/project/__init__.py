"""What a project is: [tool.vxds] in pyproject.toml and the manifest, read and edited."""
