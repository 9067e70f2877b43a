package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc CPU times: 100 on every Linux
// architecture Go supports (the kernel fixes it for user space).
const clockTicks = 100

// procSample is one reading of a process from /proc/<pid>.
type procSample struct {
	at       time.Time
	rssBytes int64 // VmRSS
	hwmBytes int64 // VmHWM: peak RSS
	cpuTicks int64 // utime + stime
	threads  int
	// Read and write system calls so far (/proc/<pid>/io syscr, syscw:
	// read(2), write(2) and their vectored forms, sockets included); 0 when
	// the file cannot be read.
	readCalls, writeCalls uint64
}

// readProc reads /proc/<pid>/stat and /proc/<pid>/status.
func readProc(pid int) (procSample, error) {
	s := procSample{at: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("loadgen: read /proc/%d/stat: %w", pid, err)
	}
	// The command name (field 2) may hold spaces: fields count from the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("loadgen: /proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return s, fmt.Errorf("loadgen: /proc/%d/stat: %d fields", pid, len(f))
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	s.cpuTicks = ut + st
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("loadgen: read /proc/%d/status: %w", pid, err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "VmRSS":
			s.rssBytes = kbField(v)
		case "VmHWM":
			s.hwmBytes = kbField(v)
		case "Threads":
			s.threads, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if io, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		for _, line := range strings.Split(string(io), "\n") {
			k, v, _ := strings.Cut(line, ":")
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			switch k {
			case "syscr":
				s.readCalls = n
			case "syscw":
				s.writeCalls = n
			}
		}
	}
	return s, nil
}

func kbField(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
	return n * 1024
}

// cpuPercent is the CPU the process used between a and b, in percent of
// one core.
func cpuPercent(a, b procSample) float64 {
	d := b.at.Sub(a.at).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(b.cpuTicks-a.cpuTicks) / clockTicks / d * 100
}

// selfCPU is this process's CPU time so far (user + system, getrusage:
// microseconds, not /proc's 10 ms ticks).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineSample is the whole machine's CPU time from /proc/stat.
type machineSample struct {
	at          time.Time
	busy, total int64 // ticks, all CPUs
	load1       float64
}

func readMachine() machineSample {
	m := machineSample{at: time.Now()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
		for i := 1; i < len(f); i++ {
			n, _ := strconv.ParseInt(f[i], 10, 64)
			m.total += n
			if i != 4 && i != 5 { // idle, iowait
				m.busy += n
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) > 0 {
			m.load1, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	return m
}

// busyCores is how many cores' worth of CPU the whole machine used between a and b.
func busyCores(a, b machineSample) float64 {
	d := b.at.Sub(a.at).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(b.busy-a.busy) / clockTicks / d
}

// openFiles counts the process's open file descriptors.
func openFiles(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

// RaiseFDLimit lifts this process's soft file-descriptor limit to the hard
// one and returns it (the Go runtime usually did so already at start).
func RaiseFDLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("loadgen: getrlimit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("loadgen: setrlimit: %w", err)
		}
	}
	return lim.Cur, nil
}
