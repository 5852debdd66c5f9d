// moerun CLI entry point.
