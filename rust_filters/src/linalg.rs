//! Small dense linear algebra on preallocated buffers: to be written with the UKF.
