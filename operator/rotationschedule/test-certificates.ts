// Public test certificates shared by the rotation unit tests (their keys were discarded).

/** A leaf issued by "test root A". */
export const TEST_LEAF = `-----BEGIN CERTIFICATE-----
MIIBITCByAIUCDgawPAty7AOTmLPvBhtpYym+R0wCgYIKoZIzj0EAwIwFjEUMBIG
A1UEAwwLdGVzdCByb290IEEwIBcNMjYxMTI4MDE1ODE5WhgPMjEyNjExMDQwMTU4
MTlaMA8xDTALBgNVBAMMBGxlYWYwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARe
flAT7Oy1W1c1Ft9bRKXA0e9TouTgOUnghXwPZDGtd/gPBSgx+EzHNaiSRXdQXQdG
Tigqehf8+7KirSGveljEMAoGCCqGSM49BAMCA0gAMEUCIQC/xj5eeSAdWnEmkxz7
zt1vugn5MyrXcMdFHRLVZ/IyrgIgcuKAnJaPC/W0E523w00IKkANEdm+EWddI0bQ
XFt4VRw=
-----END CERTIFICATE-----
`;
