//go:build !linux

package localaws

import "syscall"

// childSysProcAttr returns nil: only Linux can tie a child's life to its
// parent's, so elsewhere a stand-in outlives a parent that dies without Close.
func childSysProcAttr() *syscall.SysProcAttr {
	return nil
}
