// Prints the API server's route table, one "METHOD /path" per line, for
// the test that keeps openapi/ember.yaml in agreement with it.
#include <cstdio>

#include "api/routes.h"

int main() {
  for (const ember::ApiRoute& route : ember::ApiRoutes()) {
    std::printf("%s %s\n", route.method.c_str(), route.path.c_str());
  }
  return 0;
}
