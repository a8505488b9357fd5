package localaws

import "syscall"

// childSysProcAttr makes the kernel kill a stand-in when the test or demo
// process that started it dies without calling Close.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
