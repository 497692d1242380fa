#include "textflag.h"

// func pause()
//
// One PAUSE: a spin-wait hint that lowers the loop's power draw and frees
// the core's resources (the other hardware thread's, or the host's on a
// virtual machine) while a helper polls for work.
TEXT ·pause(SB), NOSPLIT, $0-0
	PAUSE
	RET
