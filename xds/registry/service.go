package registry

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	registryv1 "github.com/outrig/outrig/api/gen/outrig/registry/v1"
	"github.com/outrig/outrig/errkind"
)

// Service serves outrig.registry.v1.Registry on a Registry. Register it
// with registryv1.RegisterRegistryServer. Safe for concurrent use.
type Service struct {
	registryv1.UnimplementedRegistryServer
	r *Registry
}

// NewService returns the gRPC service of r.
func NewService(r *Registry) *Service {
	return &Service{r: r}
}

// Register validates the request (INVALID_ARGUMENT naming the field) and
// creates or replaces the lease.
func (s *Service) Register(_ context.Context, req *registryv1.RegisterRequest) (*registryv1.RegisterResponse, error) {
	var ttl time.Duration
	if req.GetTtl() != nil {
		if err := req.GetTtl().CheckValid(); err != nil {
			return nil, toStatus(errkind.InvalidArgument("ttl", "%v", err))
		}
		if req.GetTtl().AsDuration() < 0 {
			return nil, toStatus(errkind.InvalidArgument("ttl", "must not be negative, got %v", req.GetTtl().AsDuration()))
		}
		ttl = req.GetTtl().AsDuration()
	}
	granted, err := s.r.Register(req.GetAppId(), req.GetEndpoint(), ttl)
	if err != nil {
		return nil, toStatus(err)
	}
	return &registryv1.RegisterResponse{Ttl: durationpb.New(granted)}, nil
}

// Renew extends a lease; NOT_FOUND when the registry does not hold it.
func (s *Service) Renew(_ context.Context, req *registryv1.RenewRequest) (*registryv1.RenewResponse, error) {
	ttl, err := s.r.Renew(req.GetAppId(), req.GetInstanceId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &registryv1.RenewResponse{Ttl: durationpb.New(ttl)}, nil
}

// Deregister removes a lease at once.
func (s *Service) Deregister(_ context.Context, req *registryv1.DeregisterRequest) (*registryv1.DeregisterResponse, error) {
	if err := s.r.Deregister(req.GetAppId(), req.GetInstanceId()); err != nil {
		return nil, toStatus(err)
	}
	return &registryv1.DeregisterResponse{}, nil
}

func toStatus(err error) error {
	switch {
	case errors.Is(err, errkind.ErrInvalidArgument):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, errkind.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}
