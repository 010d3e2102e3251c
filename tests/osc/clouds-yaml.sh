#!/usr/bin/env bash
# Print a clouds.yaml for the test Keystone that tests/keystone/up.sh
# started, from its IMS_PATCH_KEYSTONE_* variables (they must be exported).
#
#   tests/osc/clouds-yaml.sh >"$dir/clouds.yaml"
#   OS_CLIENT_CONFIG_FILE=$dir/clouds.yaml openstack --os-cloud ims-demo image list
#
# Clouds (all in domain Default, interface public):
#   ims-demo             password, user demo, project demo, region RegionOne
#   ims-demo-region-two  the same in region RegionTwo (image endpoint
#                        $IMS_PATCH_KEYSTONE_REGION_TWO_GLANCE_URL)
#   ims-demo-appcred     v3applicationcredential of demo, region RegionOne
#   ims-admin            password, user admin, project admin, region RegionOne
# The file holds test passwords: write it somewhere private (mktemp -d).
set -euo pipefail
for v in URL REGION REGION_TWO DOMAIN USER PASSWORD PROJECT APP_CRED_ID APP_CRED_SECRET \
         ADMIN_USER ADMIN_PASSWORD ADMIN_PROJECT; do
  n=IMS_PATCH_KEYSTONE_$v
  [ -n "${!n:-}" ] || { echo "clouds-yaml.sh: $n is not set (export the lines of tests/keystone/up.sh)" >&2; exit 1; }
done
k() { local n=IMS_PATCH_KEYSTONE_$1; printf '%s' "${!n}"; }
password_cloud() { # NAME USER PASSWORD PROJECT REGION
  cat <<YAML
  $1:
    auth_type: password
    auth:
      auth_url: $(k URL)
      username: $2
      password: $3
      user_domain_name: $(k DOMAIN)
      project_name: $4
      project_domain_name: $(k DOMAIN)
    region_name: $5
    interface: public
    identity_api_version: 3
YAML
}
echo "clouds:"
password_cloud ims-demo "$(k USER)" "$(k PASSWORD)" "$(k PROJECT)" "$(k REGION)"
password_cloud ims-demo-region-two "$(k USER)" "$(k PASSWORD)" "$(k PROJECT)" "$(k REGION_TWO)"
password_cloud ims-admin "$(k ADMIN_USER)" "$(k ADMIN_PASSWORD)" "$(k ADMIN_PROJECT)" "$(k REGION)"
cat <<YAML
  ims-demo-appcred:
    auth_type: v3applicationcredential
    auth:
      auth_url: $(k URL)
      application_credential_id: $(k APP_CRED_ID)
      application_credential_secret: $(k APP_CRED_SECRET)
    region_name: $(k REGION)
    interface: public
    identity_api_version: 3
YAML
