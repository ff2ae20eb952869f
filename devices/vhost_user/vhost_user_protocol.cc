#include "devices/vhost_user/vhost_user_protocol.h"

namespace ember::vhost_user {

const char* RequestName(uint32_t request) {
  switch (request) {
    case kGetFeatures:
      return "GET_FEATURES";
    case kSetFeatures:
      return "SET_FEATURES";
    case kSetOwner:
      return "SET_OWNER";
    case kSetMemTable:
      return "SET_MEM_TABLE";
    case kSetVringNum:
      return "SET_VRING_NUM";
    case kSetVringAddr:
      return "SET_VRING_ADDR";
    case kSetVringBase:
      return "SET_VRING_BASE";
    case kGetVringBase:
      return "GET_VRING_BASE";
    case kSetVringKick:
      return "SET_VRING_KICK";
    case kSetVringCall:
      return "SET_VRING_CALL";
    case kGetProtocolFeatures:
      return "GET_PROTOCOL_FEATURES";
    case kSetProtocolFeatures:
      return "SET_PROTOCOL_FEATURES";
    case kGetQueueNum:
      return "GET_QUEUE_NUM";
    case kSetVringEnable:
      return "SET_VRING_ENABLE";
    case kGetConfig:
      return "GET_CONFIG";
    case kGetMaxMemSlots:
      return "GET_MAX_MEM_SLOTS";
    case kAddMemReg:
      return "ADD_MEM_REG";
  }
  return "UNKNOWN";
}

}  // namespace ember::vhost_user
