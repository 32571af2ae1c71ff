//! A small service framework, mirroring the original program's design: a service is identified
//! by a [`ServiceIdentification`] (its interface and the type describing each provider), service
//! components register providers with the [`ServiceAccessor`], and the application asks the
//! accessor for a provider by id, creating it on first use with the work directory (the user
//! configuration directory) as its persistent storage.
//!
//! Providers are created lazily: loading a plugin is cheap, creating its provider may not be
//! (it may probe for GNU tar, create directories, ...), and most runs use one provider.

use std::any::{Any, TypeId};
use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Identifies one kind of service.
pub trait ServiceIdentification: 'static {
    /// The interface every provider of the service implements.
    type Interface: ?Sized + 'static;
    /// What is known about a provider before it is created.
    type ProviderIdentification: 'static;
    /// Human-readable name of the service, for messages.
    const NAME: &'static str;
}

/// Creates a provider instance given the work directory.
pub type ProviderFactory<S> =
    Box<dyn Fn(&Path) -> Result<Rc<<S as ServiceIdentification>::Interface>, String>>;

/// A provider instance, or why it could not be created.
pub type ServiceResult<S> = Result<Rc<<S as ServiceIdentification>::Interface>, ServiceError>;

/// A component that registers services and destroys them at the end.
pub trait ServiceComponent {
    /// Drops the services this component registered (and their instances).
    fn destroy_services(&mut self, accessor: &mut ServiceAccessor);
}

/// Why a service could not be registered or obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    kind: ServiceErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ServiceErrorKind {
    NotRegistered {
        service: &'static str,
    },
    UnknownProvider {
        service: &'static str,
        provider: String,
        known: Vec<String>,
    },
    DuplicateProvider {
        service: &'static str,
        provider: String,
    },
    CreationFailed {
        provider: String,
        reason: String,
    },
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ServiceErrorKind::NotRegistered { service } => write!(f, "no {service} is registered"),
            ServiceErrorKind::UnknownProvider {
                service,
                provider,
                known,
            } => {
                write!(f, "no {service} provider \"{provider}\" is loaded")?;
                if known.is_empty() {
                    f.write_str(" (no provider is loaded; check the plugin directories)")
                } else {
                    write!(f, " (loaded: {})", known.join(", "))
                }
            }
            ServiceErrorKind::DuplicateProvider { service, provider } => {
                write!(f, "{service} provider \"{provider}\" is already registered")
            }
            ServiceErrorKind::CreationFailed { provider, reason } => {
                write!(f, "cannot start provider \"{provider}\": {reason}")
            }
        }
    }
}

impl std::error::Error for ServiceError {}

struct ProviderEntry<S: ServiceIdentification> {
    id: String,
    identification: S::ProviderIdentification,
    factory: ProviderFactory<S>,
    instance: OnceCell<Rc<S::Interface>>,
}

struct Registration<S: ServiceIdentification> {
    providers: Vec<ProviderEntry<S>>,
}

/// The registry of services and their providers.
pub struct ServiceAccessor {
    work_dir: PathBuf,
    services: HashMap<TypeId, Box<dyn Any>>,
}

impl ServiceAccessor {
    pub fn new(work_dir: impl Into<PathBuf>) -> ServiceAccessor {
        ServiceAccessor {
            work_dir: work_dir.into(),
            services: HashMap::new(),
        }
    }

    fn registration<S: ServiceIdentification>(&self) -> Result<&Registration<S>, ServiceError> {
        self.services
            .get(&TypeId::of::<S>())
            .and_then(|r| r.downcast_ref::<Registration<S>>())
            .ok_or(ServiceError {
                kind: ServiceErrorKind::NotRegistered { service: S::NAME },
            })
    }

    /// Registers a provider of service `S` under `provider_id` (unique, case-insensitive).
    pub fn register_service<S: ServiceIdentification>(
        &mut self,
        provider_id: &str,
        identification: S::ProviderIdentification,
        factory: ProviderFactory<S>,
    ) -> Result<(), ServiceError> {
        let registration = self
            .services
            .entry(TypeId::of::<S>())
            .or_insert_with(|| {
                Box::new(Registration::<S> {
                    providers: Vec::new(),
                })
            })
            .downcast_mut::<Registration<S>>()
            .expect("registrations are keyed by their own type");
        if registration
            .providers
            .iter()
            .any(|p| p.id.eq_ignore_ascii_case(provider_id))
        {
            return Err(ServiceError {
                kind: ServiceErrorKind::DuplicateProvider {
                    service: S::NAME,
                    provider: provider_id.to_string(),
                },
            });
        }
        registration.providers.push(ProviderEntry {
            id: provider_id.to_string(),
            identification,
            factory,
            instance: OnceCell::new(),
        });
        Ok(())
    }

    /// Removes service `S` with all its providers and instances.
    pub fn unregister_service<S: ServiceIdentification>(&mut self) -> Result<(), ServiceError> {
        self.services
            .remove(&TypeId::of::<S>())
            .map(drop)
            .ok_or(ServiceError {
                kind: ServiceErrorKind::NotRegistered { service: S::NAME },
            })
    }

    /// The ids and identifications of every provider of `S`, in registration order.
    pub fn provider_identifications<S: ServiceIdentification>(
        &self,
    ) -> Vec<(&str, &S::ProviderIdentification)> {
        self.registration::<S>()
            .map(|r| {
                r.providers
                    .iter()
                    .map(|p| (p.id.as_str(), &p.identification))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The provider `provider_id` of `S`, created on first use.
    pub fn get_or_create_service<S: ServiceIdentification>(
        &self,
        provider_id: &str,
    ) -> Result<Rc<S::Interface>, ServiceError> {
        let registration = self.registration::<S>()?;
        let entry = registration
            .providers
            .iter()
            .find(|p| p.id.eq_ignore_ascii_case(provider_id))
            .ok_or_else(|| ServiceError {
                kind: ServiceErrorKind::UnknownProvider {
                    service: S::NAME,
                    provider: provider_id.to_string(),
                    known: registration
                        .providers
                        .iter()
                        .map(|p| p.id.clone())
                        .collect(),
                },
            })?;
        self.instance(entry)
    }

    /// Every provider of `S`, each created on first use; failures are returned per provider.
    pub fn get_or_create_services<S: ServiceIdentification>(
        &self,
    ) -> Vec<(&str, ServiceResult<S>)> {
        match self.registration::<S>() {
            Ok(r) => r
                .providers
                .iter()
                .map(|p| (p.id.as_str(), self.instance(p)))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    fn instance<S: ServiceIdentification>(
        &self,
        entry: &ProviderEntry<S>,
    ) -> Result<Rc<S::Interface>, ServiceError> {
        if let Some(instance) = entry.instance.get() {
            return Ok(instance.clone());
        }
        let instance = (entry.factory)(&self.work_dir).map_err(|reason| ServiceError {
            kind: ServiceErrorKind::CreationFailed {
                provider: entry.id.clone(),
                reason,
            },
        })?;
        Ok(entry.instance.get_or_init(|| instance).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    trait Greeter {
        fn greet(&self) -> String;
    }
    struct English(PathBuf);
    impl Greeter for English {
        fn greet(&self) -> String {
            format!("hello from {}", self.0.display())
        }
    }
    struct GreeterService;
    impl ServiceIdentification for GreeterService {
        type Interface = dyn Greeter;
        type ProviderIdentification = &'static str;
        const NAME: &'static str = "greeter service";
    }

    #[test]
    fn creates_each_provider_once_with_the_work_dir() {
        let created = Rc::new(Cell::new(0));
        let mut accessor = ServiceAccessor::new("/work");
        let counter = created.clone();
        accessor
            .register_service::<GreeterService>(
                "English",
                "says hello",
                Box::new(move |dir| {
                    counter.set(counter.get() + 1);
                    Ok(Rc::new(English(dir.to_path_buf())) as Rc<dyn Greeter>)
                }),
            )
            .unwrap();
        let a = accessor
            .get_or_create_service::<GreeterService>("english")
            .unwrap();
        let b = accessor
            .get_or_create_service::<GreeterService>("English")
            .unwrap();
        assert_eq!(a.greet(), "hello from /work");
        assert!(Rc::ptr_eq(&a, &b));
        assert_eq!(created.get(), 1);
        assert_eq!(
            accessor.provider_identifications::<GreeterService>(),
            vec![("English", &"says hello")]
        );
    }

    #[test]
    fn errors_name_the_provider() {
        let mut accessor = ServiceAccessor::new("/w");
        let factory = || -> ProviderFactory<GreeterService> {
            Box::new(|_| Err("tar not found".to_string()))
        };
        accessor
            .register_service::<GreeterService>("Broken", "", factory())
            .unwrap();
        let dup = accessor
            .register_service::<GreeterService>("broken", "", factory())
            .unwrap_err();
        assert_eq!(
            dup.to_string(),
            "greeter service provider \"broken\" is already registered"
        );
        let err = accessor
            .get_or_create_service::<GreeterService>("Broken")
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "cannot start provider \"Broken\": tar not found"
        );
        let err = accessor
            .get_or_create_service::<GreeterService>("Other")
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "no greeter service provider \"Other\" is loaded (loaded: Broken)"
        );
        accessor.unregister_service::<GreeterService>().unwrap();
        assert!(accessor
            .provider_identifications::<GreeterService>()
            .is_empty());
    }
}
