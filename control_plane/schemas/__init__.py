"""Request and response schemas: separate Create / Update / Public models; unknown fields are rejected."""
