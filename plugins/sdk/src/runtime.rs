//! Holds the one plugin instance of this component between calls; the export
//! macros route every WIT call through here.

use std::any::Any;
use std::cell::RefCell;

thread_local! {
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    #[cfg(feature = "search-space")]
    static DIMENSIONS: RefCell<Vec<crate::Dimension>> = const { RefCell::new(Vec::new()) };
}

fn with_instance<T: 'static, R>(
    call: &str,
    f: impl FnOnce(&mut T) -> Result<R, String>,
) -> Result<R, String> {
    INSTANCE.with(|cell| {
        let mut slot = cell.borrow_mut();
        match slot.as_mut().and_then(|b| b.downcast_mut::<T>()) {
            Some(instance) => f(instance),
            None => Err(format!("`{call}` called before a successful `init`")),
        }
    })
}

fn store<T: 'static>(instance: T) {
    INSTANCE.with(|cell| *cell.borrow_mut() = Some(Box::new(instance)));
}

#[cfg(feature = "strategy")]
pub fn strategy_init<T: crate::Strategy>(
    dimensions: Vec<crate::Dimension>,
    objectives: Vec<crate::Objective>,
    config: String,
    seed: u64,
) -> Result<(), String> {
    crate::space::check_dimensions(&dimensions)?;
    if objectives.is_empty() {
        return Err("no objectives given: the run must name at least one".into());
    }
    let config = crate::Config::parse(&config, T::NAME, T::config_keys())?;
    store(T::init(crate::StrategySetup {
        dimensions,
        objectives,
        config,
        seed,
    })?);
    Ok(())
}

#[cfg(feature = "strategy")]
pub fn strategy_ask<T: crate::Strategy>(max: u32) -> Result<Vec<crate::Proposal>, String> {
    with_instance::<T, _>("ask", |s| s.ask(max.max(1)))
}

#[cfg(feature = "strategy")]
pub fn strategy_tell<T: crate::Strategy>(results: Vec<crate::TrialResult>) -> Result<(), String> {
    with_instance::<T, _>("tell", |s| s.tell(results))
}

#[cfg(feature = "search-space")]
pub fn space_init<T: crate::SearchSpace>(
    config: String,
    task: crate::Task,
) -> Result<Vec<crate::Dimension>, String> {
    let config = crate::Config::parse(&config, T::NAME, T::config_keys())?;
    let (space, dimensions) = T::init(config, task)?;
    crate::space::check_dimensions(&dimensions)?;
    DIMENSIONS.with(|d| *d.borrow_mut() = dimensions.clone());
    store(space);
    Ok(dimensions)
}

#[cfg(feature = "search-space")]
pub fn space_build<T: crate::SearchSpace>(
    assignment: crate::Assignment,
) -> Result<crate::Network, String> {
    DIMENSIONS.with(|d| crate::space::validate(&d.borrow(), &assignment))?;
    with_instance::<T, _>("build", |s| s.build(&assignment))
}
