// The C side of Runtime.Relay's callback: egress calls egress_go_relay_done on its
// threads, which calls the exported Go function with the cgo.Handle it carried as userdata.
// The cast between uintptr_t and void * stays in C, where it is ordinary.

#include "egress.h"
#include "_cgo_export.h"

static void egress_go_relay_done(void *userdata, egress_result result,
                                 struct egress_traffic traffic, const struct egress_error *error) {
	egressGoRelayDone((uintptr_t)userdata, result, traffic, (egress_error *)error);
}

egress_result egress_go_runtime_relay(const egress_runtime *runtime, int client_fd,
                                      int upstream_fd, const uint8_t *prefix,
                                      size_t prefix_len, const egress_relay_options *options,
                                      uintptr_t handle, egress_error **error_out) {
	return egress_runtime_relay(runtime, client_fd, upstream_fd, prefix, prefix_len, options,
	                            egress_go_relay_done, (void *)handle, error_out);
}
