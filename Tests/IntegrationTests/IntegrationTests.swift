// Multi-process tests running the real moerun binary under mpirun.
