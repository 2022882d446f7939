/* The SDK's private state: the host table and plugin of this shared
 * object (each plugin links its own copy of the library). */
#ifndef NNO_SDK_INTERNAL_H
#define NNO_SDK_INTERNAL_H

#include <nno/sdk.h>

extern const nno_host_api *nno__sdk_api NNO_SDK_API;
extern nno_plugin *nno__sdk_plugin NNO_SDK_API;

#endif
