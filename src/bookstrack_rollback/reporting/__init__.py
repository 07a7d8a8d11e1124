"""Reports: Allure metadata, self-contained SVG charts, the drill report."""
