// Test helpers: locating the built moerun binary and running it (under mpirun) with a timeout.
