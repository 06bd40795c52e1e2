"""What the tests share: the world builder, the API client, databases, processes, mail."""
