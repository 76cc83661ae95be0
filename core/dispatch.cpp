// The process-wide kernel-call hook of core/dispatch.h (the Python module installs the one
// that releases the GIL; nothing else sets it).
#include "core/dispatch.h"

namespace bigmodel {

std::atomic<const KernelCallHook*> g_kernel_call_hook{nullptr};
thread_local int g_kernel_hook_paused = 0;

}  // namespace bigmodel
