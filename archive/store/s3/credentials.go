package s3

import (
	"fmt"
	"net/http"
	"os"

	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/hotsnap/hotsnap/defaults"
)

// Credentials finds the credentials to sign with, in this order: the
// config's (flags or the remotes file), with its session token; the
// environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN); the shared credentials file (AWS_SHARED_CREDENTIALS_FILE
// or ~/.aws/credentials, profile AWS_PROFILE); a web identity token file
// (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, as on EKS); the ECS
// container endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI);
// the EC2 instance role, only with InstanceRole (the metadata service is
// never probed by surprise). With AssumeRole, the credentials found are
// exchanged at the endpoint's STS for temporary ones.
func Credentials(cfg Config, tr http.RoundTripper) (*credentials.Credentials, error) {
	var creds *credentials.Credentials
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		if cfg.AccessKey == "" || cfg.SecretKey == "" {
			return nil, fmt.Errorf("s3 remote: an access key needs its secret key, and the reverse")
		}
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)
	} else {
		chain := []credentials.Provider{&credentials.EnvAWS{}, &credentials.FileAWSCredentials{}}
		if cfg.InstanceRole || os.Getenv("AWS_WEB_IDENTITY_TOKEN_FILE") != "" ||
			os.Getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") != "" || os.Getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI") != "" {
			chain = append(chain, &credentials.IAM{Client: &http.Client{Transport: tr, Timeout: defaults.ConnectTimeout * 3}})
		}
		creds = credentials.NewChainCredentials(chain)
		v, err := creds.Get()
		if err != nil || v.AccessKeyID == "" {
			why := "none of the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), the shared credentials file (AWS_PROFILE), a web identity token or a container role gave any"
			if err != nil {
				why = err.Error()
			}
			return nil, fmt.Errorf("s3 remote: no credentials: %s; give them in the remotes file or the environment, or set instance_role", why)
		}
	}
	if !cfg.AssumeRole {
		return creds, nil
	}
	v, err := creds.Get()
	if err != nil {
		return nil, fmt.Errorf("s3 remote: credentials: %v", err)
	}
	scheme := "https://"
	if cfg.Insecure {
		scheme = "http://"
	}
	sts, err := credentials.NewSTSAssumeRole(scheme+cfg.Endpoint, credentials.STSAssumeRoleOptions{
		AccessKey: v.AccessKeyID, SecretKey: v.SecretAccessKey, SessionToken: v.SessionToken, Location: cfg.Region})
	if err != nil {
		return nil, fmt.Errorf("s3 remote: assume role at %s: %v", cfg.Endpoint, err)
	}
	return sts, nil
}
