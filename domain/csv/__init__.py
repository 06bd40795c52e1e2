"""CSV files of numbers: export, import, and the parameters both take."""
