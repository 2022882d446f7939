/* The SDK's set-up: which host table its functions call. See nno/sdk.h. */
#ifndef NNO_SDK_BASE_H
#define NNO_SDK_BASE_H

#include <nno/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every SDK function is hidden, whatever the plugin's own visibility
 * flags: the library must never become an export of a plugin. */
#if defined(__GNUC__)
#define NNO_SDK_API __attribute__((visibility("hidden")))
#else
#define NNO_SDK_API
#endif

/*
 * Give the SDK the host table and the plugin, from on_plugin_init, before
 * any other SDK call. Both are borrowed until on_plugin_fini, as the ABI
 * says. The SDK keeps them in its own static state, one copy per shared
 * object.
 */
NNO_SDK_API void nno_sdk_init(nno_plugin *p, const nno_host_api *api);

/* The table and plugin given to nno_sdk_init(); NULL before. */
NNO_SDK_API const nno_host_api *nno_sdk_api(void);
NNO_SDK_API nno_plugin *nno_sdk_plugin(void);

#ifdef __cplusplus
}
#endif
#endif /* NNO_SDK_BASE_H */
